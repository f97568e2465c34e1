"""Every reader on a small fixture written here in the data set's own format."""

import json
from pathlib import Path

import pytest

from evilm.data import formats
from evilm.data.records import ClassItem, DataError, MCItem, QAItem, VideoText


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"video")
    return path


# --- WebVid ---

WEBVID = """videoid,contentUrl,duration,page_dir,name
21179416,https://ak.picdn.net/shutterstock/videos/21179416/preview/stock-footage-aerial.mp4,PT00H00M11S,006001_006050,"Aerial shot winter forest, snow"
5629184,https://ak.picdn.net/shutterstock/videos/5629184/preview/stock-footage-red.mp4,PT00H00M29S,006001_006050,Red flag waving on the wind
"""


def test_webvid_csv(tmp_path):
    csv = tmp_path / "results_2M_train.csv"
    csv.write_text(WEBVID)
    touch(tmp_path / "videos/006001_006050/21179416.mp4")
    records = formats.read_webvid_csv(csv, tmp_path / "videos")
    assert [type(r) for r in records] == [VideoText, VideoText]
    assert records[0].caption == "Aerial shot winter forest, snow"
    assert records[0].video_path == str(tmp_path / "videos/006001_006050/21179416.mp4")
    assert records[1].video_id == "5629184" and records[1].video_path.endswith("006001_006050/5629184.mp4")
    assert records[1].source.endswith("line 3")


def test_webvid_empty_caption_and_missing_column_name_the_file_and_row(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("videoid,contentUrl,duration,page_dir,name\n1,u,PT00H00M01S,p,ok\n2,u,PT00H00M01S,p,\n")
    with pytest.raises(DataError, match=r"train\.csv, line 3: empty caption"):
        formats.read_webvid_csv(csv, tmp_path)
    csv.write_text("videoid,contentUrl,duration,pagedir,name\n1,u,d,p,ok\n")
    with pytest.raises(DataError, match=r"train\.csv: missing column 'page_dir' \(did you mean 'pagedir'\?\)"):
        formats.read_webvid_csv(csv, tmp_path)
    csv.write_text(WEBVID)
    with pytest.raises(DataError, match="missing column 'title'"):
        formats.read_webvid_csv(csv, tmp_path, caption_column="title")


# --- MSRVTT ---


def _msrvtt(tmp_path):
    ann = {"info": {}, "images": [{"id": "video0"}],
           "annotations": [{"caption": "a man is singing", "id": 0, "image_id": "video0"},
                           {"caption": "a person sings on stage", "id": 1, "image_id": "video0"},
                           {"caption": "a car drives down a road", "id": 2, "image_id": "video7010"},
                           {"caption": "cars racing", "id": 3, "image_id": "video7010"}]}
    (tmp_path / "MSR_VTT.json").write_text(json.dumps(ann))
    (tmp_path / "train_list_jsfusion.txt").write_text("video0\n")
    (tmp_path / "val_list_jsfusion.txt").write_text("video7010\n")
    return formats.read_msrvtt_captions(tmp_path / "MSR_VTT.json")


def test_msrvtt_json_and_jsfusion_split(tmp_path):
    captions = _msrvtt(tmp_path)
    train = formats.read_msrvtt_retrieval(captions, formats.read_id_list(tmp_path / "train_list_jsfusion.txt"),
                                          tmp_path / "videos", one_caption=False)
    test = formats.read_msrvtt_retrieval(captions, formats.read_id_list(tmp_path / "val_list_jsfusion.txt"),
                                         tmp_path / "videos", one_caption=True)
    assert [r.caption for r in train] == ["a man is singing", "a person sings on stage"]
    assert [(r.video_id, r.caption) for r in test] == [("video7010", "a car drives down a road")]
    assert test[0].video_path == str(tmp_path / "videos/video7010.mp4")
    # CLIP4Clip's JSFusion csv picks the standard test caption
    (tmp_path / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\nret0,msr7010,video7010,cars racing\n")
    chosen = formats.read_msrvtt_jsfusion_csv(tmp_path / "MSRVTT_JSFUSION_test.csv")
    test = formats.read_msrvtt_retrieval(captions, ["video7010"], tmp_path, True, test_captions=chosen)
    assert test[0].caption == "cars racing"
    with pytest.raises(DataError, match="video 'video9' has no caption"):
        formats.read_msrvtt_retrieval(captions, ["video9"], tmp_path, True)


def test_msrvtt_json_missing_key_names_the_entry(tmp_path):
    (tmp_path / "MSR_VTT.json").write_text(json.dumps({"annotations": [{"caption": "x", "image_id": "video1"},
                                                                        {"sentence": "y", "image_id": "video2"}]}))
    with pytest.raises(DataError, match=r"MSR_VTT\.json, annotations\[1\]: missing key 'caption'"):
        formats.read_msrvtt_captions(tmp_path / "MSR_VTT.json")


def test_msrvtt_authors_videodatainfo(tmp_path):
    data = {"videos": [{"video_id": "video0", "split": "train"}],
            "sentences": [{"caption": "a cartoon plays", "video_id": "video0", "sen_id": 0}]}
    (tmp_path / "train_val_videodatainfo.json").write_text(json.dumps(data))
    assert formats.read_msrvtt_videodatainfo(tmp_path / "train_val_videodatainfo.json")["video0"][0][0] == "a cartoon plays"


# --- MSRVTT-QA / MSVD-QA ---


def test_msrvtt_qa_release_json(tmp_path):
    rows = [{"answer": "man", "category_id": 2, "id": 0, "question": "who is singing?", "video_id": 7010},
            {"answer": "guitar", "category_id": 2, "id": 1, "question": "what is a man playing?", "video_id": 7010}]
    (tmp_path / "test_qa.json").write_text(json.dumps(rows))
    items = formats.read_msrvtt_qa(tmp_path / "test_qa.json", tmp_path / "videos")
    assert all(isinstance(i, QAItem) for i in items)
    assert items[0].video_id == "video7010" and items[0].video_path == str(tmp_path / "videos/video7010.mp4")
    assert [i.answer_type for i in items] == ["who", "what"]
    assert items[1].meta["category_id"] == 2


def test_msvd_qa_release_json_with_youtube_mapping(tmp_path):
    (tmp_path / "youtube_mapping.txt").write_text("-4wsuPCjDBc_5_15 vid1\n-7KMZQEsJW4_205_208 vid2\n")
    (tmp_path / "train_qa.json").write_text(json.dumps(
        [{"answer": "dog", "id": 0, "question": "what is running?", "video_id": 2}]))
    items = formats.read_msvd_qa(tmp_path / "train_qa.json", tmp_path / "youtube_mapping.txt", tmp_path / "clips")
    assert items[0].video_id == "-7KMZQEsJW4_205_208"
    assert items[0].video_path == str(tmp_path / "clips/-7KMZQEsJW4_205_208.avi")
    (tmp_path / "bad_qa.json").write_text(json.dumps([{"answer": "x", "id": 0, "question": "q?", "video_id": 9}]))
    with pytest.raises(DataError, match="bad_qa.json, entry 0: video_id 9 is not in"):
        formats.read_msvd_qa(tmp_path / "bad_qa.json", tmp_path / "youtube_mapping.txt", tmp_path)
    (tmp_path / "empty_answer.json").write_text(json.dumps([{"answer": " ", "id": 0, "question": "q?", "video_id": 1}]))
    with pytest.raises(DataError, match="entry 0: empty answer"):
        formats.read_msvd_qa(tmp_path / "empty_answer.json", tmp_path / "youtube_mapping.txt", tmp_path)


# --- ClipBERT-style JSONL ---


def test_clipbert_qa_and_mc_jsonl(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        '{"answer": "cartoon", "question": "what is playing?", "video_id": "video1", "answer_type": "what"}\n')
    qa = formats.read_clipbert_qa_jsonl(tmp_path / "train.jsonl", tmp_path)
    assert (qa[0].video_id, qa[0].answer, qa[0].answer_type) == ("video1", "cartoon", "what")
    mc = {"qid": 0, "clip_name": "video7010", "options": ["a", "b", "c", "d", "e"], "answer": 3}
    (tmp_path / "msrvtt_mc_test.jsonl").write_text(json.dumps(mc) + "\n")
    items = formats.read_msrvtt_mc_jsonl(tmp_path / "msrvtt_mc_test.jsonl", tmp_path)
    assert isinstance(items[0], MCItem) and items[0].answer == 3 and items[0].options[3] == "d"
    mc["answer"] = 5
    (tmp_path / "bad.jsonl").write_text(json.dumps(mc) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl, line 1: answer index 5 is outside 0..4"):
        formats.read_msrvtt_mc_jsonl(tmp_path / "bad.jsonl", tmp_path)


# --- TGIF-QA ---

ACTION = ("gif_name\tquestion\ta1\ta2\ta3\ta4\ta5\tanswer\tvid_id\tkey\n"
          "tumblr_nk172bbdPI1u1lr18o1_250\tWhat does the butterfly do 10 or more than 10 times ?\tstuff marshmallow"
          "\tholds a phone towards face\tfall over\ttalk\tflap wings\t4\tACTION4\t26\n")
FRAMEQA = ("gif_name\tquestion\tanswer\ttype\tvid_id\tkey\tdescription\n"
           "tumblr_no73q2fm0I1uuf348o1_250\twhat is being placed in the white ice cream cone ?\tcookie\t0"
           "\tFRAMEQA1159\t27138\ta chocolate cookie is being placed in a white ice cream cone .\n"
           "tumblr_nh7j4ud4Mb1u5xywco1_500\twhat is the color of the shirt ?\tblack\t2\tFRAMEQA4460\t87751"
           "\ta man in a black shirt was singing and dancing .\n")
COUNT = ("gif_name\tquestion\tanswer\tvid_id\tkey\n"
         "tumblr_nqc2mbmU2J1uxhtnwo1_400\tHow many times does the woman chew food ?\t4\tCOUNT1\t5\n")


def test_tgif_action_answer_is_an_option_index(tmp_path):
    (tmp_path / "Train_action_question.csv").write_text(ACTION)
    touch(tmp_path / "gifs/tumblr_nk172bbdPI1u1lr18o1_250.gif")
    items = formats.read_tgif_qa(tmp_path / "Train_action_question.csv", "action", tmp_path / "gifs")
    assert isinstance(items[0], MCItem)
    assert items[0].options[items[0].answer] == "flap wings"
    assert items[0].question.startswith("What does the butterfly")
    assert items[0].video_path == str(tmp_path / "gifs/tumblr_nk172bbdPI1u1lr18o1_250.gif")


def test_tgif_transition_reads_like_action(tmp_path):
    text = ACTION.replace("What does the butterfly do 10 or more than 10 times ?", "What does the man do before yell ?")
    (tmp_path / "Test_transition_question.csv").write_text(text)
    items = formats.read_tgif_qa(tmp_path / "Test_transition_question.csv", "transition", tmp_path)
    assert items[0].answer == 4 and items[0].question.endswith("before yell ?")


def test_tgif_frameqa_answer_is_a_word_and_count_a_number(tmp_path):
    (tmp_path / "Train_frameqa_question.csv").write_text(FRAMEQA)
    items = formats.read_tgif_qa(tmp_path / "Train_frameqa_question.csv", "frameqa", tmp_path)
    assert [(i.answer, i.answer_type) for i in items] == [("cookie", "object"), ("black", "color")]
    (tmp_path / "Train_count_question.csv").write_text(COUNT)
    count = formats.read_tgif_qa(tmp_path / "Train_count_question.csv", "count", tmp_path)
    assert count[0].answer == "4" and count[0].answer_type == "count"


def test_tgif_bad_rows_name_file_and_row(tmp_path):
    (tmp_path / "a.csv").write_text(ACTION.replace("\t4\tACTION4", "\tfour\tACTION4"))
    with pytest.raises(DataError, match=r"a\.csv, line 2: answer 'four' is not an option index"):
        formats.read_tgif_qa(tmp_path / "a.csv", "action", tmp_path)
    (tmp_path / "b.csv").write_text(FRAMEQA.replace("\ttype\t", "\tkind\t"))
    with pytest.raises(DataError, match=r"b\.csv: missing column 'type'"):
        formats.read_tgif_qa(tmp_path / "b.csv", "frameqa", tmp_path)
    with pytest.raises(DataError, match="unknown TGIF-QA task 'actoin'"):
        formats.read_tgif_qa(tmp_path / "a.csv", "actoin", tmp_path)


# --- DiDeMo ---


def test_didemo_paragraph_in_moment_order(tmp_path):
    rows = [{"annotation_id": 1, "description": "the dog runs back.", "video": "12090392@N02_13482799053_87ef417396.mov",
             "times": [[3, 4], [3, 3], [3, 4], [4, 4]], "download_link": "x", "num_segments": 6},
            {"annotation_id": 0, "description": "a dog chases a ball", "video": "12090392@N02_13482799053_87ef417396.mov",
             "times": [[0, 1], [0, 0], [0, 1], [1, 1]], "download_link": "x", "num_segments": 6}]
    (tmp_path / "test_data.json").write_text(json.dumps(rows))
    touch(tmp_path / "videos/12090392@N02_13482799053_87ef417396.mp4")  # converted to mp4
    items = formats.read_didemo(tmp_path / "test_data.json", tmp_path / "videos")
    assert len(items) == 1
    assert items[0].caption == "a dog chases a ball. the dog runs back."
    assert items[0].video_path.endswith(".mp4") and len(items[0].meta["moments"]) == 2
    rows[0]["times"] = "soon"
    (tmp_path / "bad.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"bad\.json, entry 0: 'times' must be"):
        formats.read_didemo(tmp_path / "bad.json", tmp_path)


# --- HMDB51 ---


def test_hmdb51_official_split_files(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text(
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \nAtempting_to_comb_my_hair_brush_hair_h_cm_np1_fr_goo_0.avi 2 \n"
        "Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi 0 \n")
    (splits / "cartwheel_test_split1.txt").write_text("Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi 1 \n")
    (splits / "cartwheel_test_split2.txt").write_text("Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi 2 \n")
    train = formats.read_hmdb51_split(splits, tmp_path / "videos", 1, "train")
    test = formats.read_hmdb51_split(splits, tmp_path / "videos", 1, "test")
    assert all(isinstance(r, ClassItem) for r in train)
    assert sorted(r.label for r in train) == ["brush_hair", "cartwheel"]
    assert [r.video_id for r in test] == ["Atempting_to_comb_my_hair_brush_hair_h_cm_np1_fr_goo_0"]
    assert test[0].video_path == str(tmp_path / "videos/brush_hair/Atempting_to_comb_my_hair_brush_hair_h_cm_np1_fr_goo_0.avi")
    assert [r.label for r in formats.read_hmdb51_split(splits, tmp_path, 2, "test")] == ["cartwheel"]
    (splits / "cartwheel_test_split1.txt").write_text("clip.avi train\n")
    with pytest.raises(DataError, match=r"cartwheel_test_split1\.txt, line 1"):
        formats.read_hmdb51_split(splits, tmp_path, 1, "train")


# --- Kinetics-400 ---


def test_kinetics_csv_and_video_layouts(tmp_path):
    (tmp_path / "validate.csv").write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,0wR5jVB-WPk,417,427,validate,0\n"
        "air drumming,--nQbRBEz2s,104,114,validate,0\n")
    touch(tmp_path / "val/air_drumming/--nQbRBEz2s_000104_000114.mp4")
    items = formats.read_kinetics_csv(tmp_path / "validate.csv", tmp_path / "val")
    assert [r.label for r in items] == ["abseiling", "air drumming"]
    assert items[0].video_id == "0wR5jVB-WPk_000417_000427"
    assert items[0].video_path == str(tmp_path / "val/abseiling/0wR5jVB-WPk_000417_000427.mp4")  # expected path
    assert items[1].video_path == str(tmp_path / "val/air_drumming/--nQbRBEz2s_000104_000114.mp4")
    (tmp_path / "bad.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,x,start,10,train\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 2: time_start/time_end must be numbers"):
        formats.read_kinetics_csv(tmp_path / "bad.csv", tmp_path)


def test_missing_annotation_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nothing\.csv: annotation file not found"):
        formats.read_webvid_csv(tmp_path / "nothing.csv", tmp_path)


# --- files as downloaded, broken the way real files are -----------------------------------------


def test_csv_row_with_an_unquoted_comma_is_an_error_not_a_column_shift(tmp_path):
    # the second data row's caption has an unquoted comma: one field too many
    csv = tmp_path / "results_2M_train.csv"
    csv.write_text(WEBVID + "1000,https://ak.picdn.net/x.mp4,PT00H00M05S,006001_006050,Dog runs, then sits\n"
                   "1001,https://ak.picdn.net/y.mp4,PT00H00M05S,006001_006050,Cat sleeps\n")
    with pytest.raises(DataError, match=r"results_2M_train\.csv, line 4: 6 fields where the header has 5 "
                                        r"\(videoid, contentUrl, duration, page_dir, name\)"):
        formats.read_webvid_csv(csv, tmp_path)


def test_tsv_and_kinetics_rows_with_a_stray_separator_are_errors(tmp_path):
    lines = ACTION.splitlines()
    (tmp_path / "Train_action_question.csv").write_text(
        "\n".join([lines[0], lines[1], lines[1].replace("flap wings", "flap\twings")]) + "\n")
    with pytest.raises(DataError, match=r"Train_action_question\.csv, line 3: 11 fields where the header has 10"):
        formats.read_tgif_qa(tmp_path / "Train_action_question.csv", "action", tmp_path)
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "abseiling,0wR5jVB-WPk,417,427,train\n"
                                        "air drumming,--nQbRBEz2s,104,114\n")
    with pytest.raises(DataError, match=r"train\.csv, line 3: 4 fields where the header has 5"):
        formats.read_kinetics_csv(tmp_path / "train.csv", tmp_path)


NOT_UTF8 = "caf\xe9".encode("latin-1")  # Latin-1 'é', not UTF-8


@pytest.mark.parametrize("name", ["msrvtt_mc_test.jsonl", "val_list_jsfusion.txt", "youtube_mapping.txt",
                                  "testTrainMulti_7030_splits/brush_hair_test_split1.txt"])
def test_a_byte_that_is_not_utf8_names_the_file_and_a_fix(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    good = {"msrvtt_mc_test.jsonl": b'{"qid": 0, "clip_name": "video1", "options": ["a", "b"], "answer": 0}\n',
            "val_list_jsfusion.txt": b"video7010\n",
            "youtube_mapping.txt": b"-4wsuPCjDBc_5_15 vid1\n"}.get(name, b"April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1\n")
    path.write_bytes(good + NOT_UTF8 + b" 1\n")
    read = {"msrvtt_mc_test.jsonl": lambda: formats.read_msrvtt_mc_jsonl(path, tmp_path),
            "val_list_jsfusion.txt": lambda: formats.read_id_list(path),
            "youtube_mapping.txt": lambda: formats.read_youtube_mapping(path)}.get(
        name, lambda: formats.read_hmdb51_split(path.parent, tmp_path, 1, "train"))
    with pytest.raises(DataError, match=rf"{path.name}, line 2: not UTF-8 text .*iconv"):
        read()


def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "youtube_mapping.txt").write_bytes(bom + b"-4wsuPCjDBc_5_15 vid1\n-7KMZQEsJW4_205_208 vid2\n")
    assert formats.read_youtube_mapping(tmp_path / "youtube_mapping.txt") == {
        "1": "-4wsuPCjDBc_5_15", "2": "-7KMZQEsJW4_205_208"}
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_bytes(bom + b"April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n")
    [item] = formats.read_hmdb51_split(splits, tmp_path / "videos", 1, "train")
    assert item.video_id == "April_09_brush_hair_u_nm_np1_ba_goo_0"
    assert item.video_path == str(tmp_path / "videos/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi")
    (tmp_path / "MSR_VTT.json").write_bytes(bom + json.dumps({"annotations": [
        {"image_id": "video0", "caption": "a man sings"}]}).encode())
    assert list(formats.read_msrvtt_captions(tmp_path / "MSR_VTT.json")) == ["video0"]


@pytest.mark.parametrize("video_id", [None, 7.0, "seven"])
def test_msrvtt_qa_null_and_non_integer_video_ids_are_errors(tmp_path, video_id):
    rows = [{"answer": "man", "id": 0, "question": "who sings?", "video_id": 7010},
            {"answer": "man", "id": 1, "question": "who sings?", "video_id": video_id}]
    (tmp_path / "test_qa.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"test_qa\.json, entry 1: video_id .* is not a video number"):
        formats.read_msrvtt_qa(tmp_path / "test_qa.json", tmp_path)
    rows[1]["video_id"] = "video7011"  # a video name is fine
    (tmp_path / "test_qa.json").write_text(json.dumps(rows))
    assert [i.video_id for i in formats.read_msrvtt_qa(tmp_path / "test_qa.json", tmp_path)] == [
        "video7010", "video7011"]


DIDEMO_VIDEO = "12090392@N02_13482799053_87ef417396.mov"


@pytest.mark.parametrize("times", [[], None, [[3]], [[4, 3]], [["a", "b"]]])
def test_didemo_times_must_be_start_end_pairs(tmp_path, times):
    rows = [{"annotation_id": 0, "description": "a dog runs", "video": DIDEMO_VIDEO, "times": times}]
    (tmp_path / "train_data.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"train_data\.json, entry 0: 'times' must be a non-empty list"):
        formats.read_didemo(tmp_path / "train_data.json", tmp_path)


@pytest.mark.parametrize("video", [DIDEMO_VIDEO, "10015567@N08_3655084291_d8b58466fa.mp4",
                                   "93119744@N00_6197449961_0e5e8ba2dc.3gp"])
def test_didemo_clips_named_as_the_download_script_saves_them(tmp_path, video):
    rows = [{"annotation_id": 0, "description": "a dog runs", "video": video, "times": [[0, 1]]}]
    (tmp_path / "val_data.json").write_text(json.dumps(rows))
    clip = touch(tmp_path / f"videos/{video}.mp4")  # the AWS script appends .mp4 to the name: <name>.mov.mp4
    [item] = formats.read_didemo(tmp_path / "val_data.json", tmp_path / "videos")
    assert item.video_path == str(clip) and item.video_id == video.rsplit(".", 1)[0]


MSR_MC = ("key\tvid_key\tvideo_id\ta1\ta2\ta3\ta4\ta5\tanswer\n"
          "mc0\tmsr7010\tvideo7010\ta man sings\ta dog runs\tcars race\ta cartoon plays\tpeople cook\t0\n"
          "mc1\tmsr7011\tvideo7011\ta man sings\ta dog runs\tcars race, fast\ta cartoon plays\tpeople cook\t2\n")


def test_jsfusion_msrvtt_mc_csv(tmp_path):
    (tmp_path / "MSR_MC_test.csv").write_text(MSR_MC)
    items = formats.read_msrvtt_mc_csv(tmp_path / "MSR_MC_test.csv", tmp_path / "videos")
    assert [(i.video_id, i.answer, i.options[i.answer]) for i in items] == [
        ("video7010", 0, "a man sings"), ("video7011", 2, "cars race, fast")]
    assert items[1].video_path == str(tmp_path / "videos/video7011.mp4") and items[1].source.endswith("line 3")
    # without the video_id column, vid_key names the video
    (tmp_path / "keys.csv").write_text("\n".join("\t".join(f for i, f in enumerate(line.split("\t")) if i != 2)
                                                 for line in MSR_MC.splitlines()) + "\n")
    assert [i.video_id for i in formats.read_msrvtt_mc_csv(tmp_path / "keys.csv", tmp_path)] == [
        "video7010", "video7011"]
    (tmp_path / "bad.csv").write_text(MSR_MC.replace("people cook\t2", "people cook\t5"))
    with pytest.raises(DataError, match=r"bad\.csv, line 3: answer index 5 is outside 0\.\.4"):
        formats.read_msrvtt_mc_csv(tmp_path / "bad.csv", tmp_path)
